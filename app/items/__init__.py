"""The worked example: items that belong to users. Copy this folder to add a resource, or delete it."""
