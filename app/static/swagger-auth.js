// Swagger UI start-up, kept in a file (not inline) so a strict script-src CSP still allows it.
// Two conveniences: a token pasted into Authorize works with or without "Bearer " (the bearer
// scheme adds one), and a successful login or refresh made in the UI authorises the calls that
// follow (the access token for every operation, the refresh token for POST /auth/refresh).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  var ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset.slice(1)],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    docExpansion: "list",
    // Tokens stay in the page's memory unless DOCS_PERSIST_AUTH asks for localStorage (which any
    // script on this origin can read, and which outlives the tab).
    persistAuthorization: root.dataset.persistAuth === "true",
    validatorUrl: null,
    requestInterceptor: function (req) {
      var auth = req.headers.Authorization;
      if (auth) req.headers.Authorization = auth.replace(/^Bearer\s+Bearer\s+/i, "Bearer ");
      return req;
    },
    responseInterceptor: function (res) {
      if (res.ok && /\/auth\/(login|refresh)$/.test(res.url) && res.body && res.body.access_token) {
        authorize({ bearerAuth: res.body.access_token, refreshToken: res.body.refresh_token });
      }
      return res;
    },
  });
  window.ui = ui;

  // What the Authorize dialog itself does. Not ui.preauthorizeApiKey: it hands over a plain-object
  // schema, which the persistAuthorization code cannot read, so the token was used but never saved
  // and a page reload logged the user out of the UI.
  function authorize(tokens) {
    var schemes = ui.specSelectors.specJson().getIn(["components", "securitySchemes"]);
    var payload = {};
    Object.keys(tokens).forEach(function (name) {
      if (tokens[name]) payload[name] = { name: name, schema: schemes.get(name), value: tokens[name] };
    });
    ui.authActions.authorizeWithPersistOption(payload);
  }
});
