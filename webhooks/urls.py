from django.urls import path

from webhooks import apis

urlpatterns = [
    path("webhook-endpoints", apis.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoint-list"),
    path("webhook-endpoints/<int:endpoint_id>", apis.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint"),
    path(
        "webhook-endpoints/<int:endpoint_id>/rotate-secret",
        apis.WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/ping", apis.WebhookEndpointPingApi.as_view(), name="webhook-endpoint-ping"
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/deliveries",
        apis.WebhookEndpointDeliveryListApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/redeliver-failed",
        apis.WebhookEndpointRedeliverFailedApi.as_view(),
        name="webhook-endpoint-redeliver-failed",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>/redeliver",
        apis.WebhookDeliveryRedeliverApi.as_view(),
        name="webhook-delivery-redeliver",
    ),
    path("events", apis.EventListApi.as_view(), name="event-list"),
]
