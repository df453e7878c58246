"""The items namespace: each user creates, lists, reads, changes and deletes their own items.

Another user's item is 404, as if it did not exist; an admin sees and changes everyone's.
"""

import uuid
from typing import Any

from sqlalchemy import select

from app.core.extensions import db
from app.items.models import Item
from app.items.schemas import ItemInputSchema, ItemListQuerySchema, ItemPageSchema, ItemSchema
from app.toolkit import (
    Namespace,
    Resource,
    body,
    check_if_match,
    created,
    current_user,
    errors,
    keyset_page,
    operation,
    owned_or_404,
    query,
    response,
)

ns = Namespace("items", description="Your items: the worked example of a resource")


@ns.route("")
class ItemList(Resource):
    @operation("listItems")
    @query(ItemListQuerySchema)
    @response(ItemPageSchema, description="A page of items, newest first; a Link header points to the next")
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """List your items (an admin: everyone's), newest first."""
        stmt = select(Item)
        if not current_user.is_admin:
            stmt = stmt.where(Item.owner_id == current_user.id)
        if "done" in args:
            stmt = stmt.where(Item.done == args["done"])
        return keyset_page(stmt, Item.created_at, args, descending=True)

    @operation("createItem")
    @body(ItemInputSchema)
    @response(ItemSchema, 201, "Item created", etag=True)
    def post(self, data: dict[str, Any]) -> tuple[Item, dict[str, str]]:
        """Create an item."""
        item = Item(owner_id=current_user.id, **data)
        db.session.add(item)
        db.session.commit()
        return created(item, ItemDetail, item_id=item.id)


@ns.route("/<uuid:item_id>")
@ns.param("item_id", "The item's id (a UUID)")
class ItemDetail(Resource):
    @operation("getItem")
    @response(ItemSchema, description="The item", etag=True)
    @errors(404)
    def get(self, item_id: uuid.UUID) -> Item:
        """Show an item."""
        return owned_or_404(Item, item_id)

    @operation("updateItem")
    @body(ItemInputSchema(partial=True))
    @response(ItemSchema, description="The changed item", etag=True)
    @errors(404, 412, 428)
    def patch(self, data: dict[str, Any], item_id: uuid.UUID) -> Item:
        """Change an item; send If-Match with its ETag so a concurrent change is not lost."""
        item = owned_or_404(Item, item_id)
        check_if_match(item)
        for field, value in data.items():
            setattr(item, field, value)
        db.session.commit()
        return item

    @operation("deleteItem")
    @response(None, 204, "Item deleted")
    @errors(404)
    def delete(self, item_id: uuid.UUID) -> None:
        """Delete an item."""
        db.session.delete(owned_or_404(Item, item_id))
        db.session.commit()
