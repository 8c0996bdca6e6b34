"""Every table, imported in one place so that the metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from fulfill.auth import ApiKey
from fulfill.dispatch.models import DriverEvent, Plan, PlanRoute, PlanStop, Van, Wave
from fulfill.fulfillers.models import ThirdPartyHealth, ThirdPartyOrder
from fulfill.idempotency import IdempotencyRecord
from fulfill.inventory.models import Node, Product, Stock, StockMovement
from fulfill.notify.models import Case, CaseMessage, Notice
from fulfill.orders.models import Fulfillment, FulfillmentLine, Order, OrderEvent, OrderLine
from fulfill.outbox.models import OutboxEvent
from fulfill.restock.models import RestockSuggestion
from fulfill.tracking.models import (
    CarrierHealth,
    Shipment,
    TrackingAlert,
    TrackingEvent,
    WebhookReceipt,
)

metadata = SQLModel.metadata

__all__ = [
    "ApiKey",
    "CarrierHealth",
    "Case",
    "CaseMessage",
    "DriverEvent",
    "Fulfillment",
    "FulfillmentLine",
    "IdempotencyRecord",
    "Node",
    "Notice",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OutboxEvent",
    "Plan",
    "PlanRoute",
    "PlanStop",
    "Product",
    "RestockSuggestion",
    "Shipment",
    "Stock",
    "StockMovement",
    "ThirdPartyHealth",
    "ThirdPartyOrder",
    "TrackingAlert",
    "TrackingEvent",
    "Van",
    "Wave",
    "WebhookReceipt",
    "metadata",
]
