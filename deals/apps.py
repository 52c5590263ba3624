from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "deals"
    verbose_name = "Deals marketplace"

    def ready(self) -> None:
        from deals.selectors import deal_event_audience_check
        from webhooks.registry import audience_check_register

        audience_check_register("deal.", deal_event_audience_check)
