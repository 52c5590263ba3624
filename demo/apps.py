from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The seed data and the embedded demo: the composition root at the top of the layers.

    It may import every app and nothing imports it (``.importlinter``).
    """

    name = "demo"
    verbose_name = "Seed data and embedded demo"
