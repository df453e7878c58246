// Swagger UI start-up, kept in a file (not inline) so a strict script-src CSP still allows it.
// Two conveniences: a token pasted into Authorize works with or without "Bearer ", and a
// successful login or refresh made in the UI authorises the calls that follow.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  var ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset.slice(1)],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    docExpansion: "list",
    persistAuthorization: true,
    validatorUrl: null,
    requestInterceptor: function (req) {
      var auth = req.headers.Authorization;
      if (auth && !/^Bearer\s/i.test(auth)) {
        req.headers.Authorization = "Bearer " + auth.trim();
      }
      return req;
    },
    responseInterceptor: function (res) {
      if (res.ok && /\/auth\/(login|refresh)$/.test(res.url) && res.body && res.body.access_token) {
        authorize("Bearer " + res.body.access_token);
      }
      return res;
    },
  });
  window.ui = ui;

  // What the Authorize dialog itself does. Not ui.preauthorizeApiKey: it hands over a plain-object
  // schema, which the persistAuthorization code cannot read (a console TypeError), so the token
  // was used but never saved and a page reload logged the user out of the UI.
  function authorize(value) {
    var schema = ui.specSelectors.specJson().getIn(["securityDefinitions", "Bearer"]);
    ui.authActions.authorizeWithPersistOption({ Bearer: { name: "Bearer", schema: schema, value: value } });
  }
});
