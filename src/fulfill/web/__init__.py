"""The web pages: the customer's tracking page and the dispatcher's page, with their templates
and static files. They read several domains and belong to none."""
