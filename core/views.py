"""The start page: where a person who opens the site in a browser finds the admin, the API docs and examples."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View


class HomeView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        base = request.build_absolute_uri("/").rstrip("/")
        return render(request, "core/home.html", {"base": base, "embedded": settings.EMBEDDED})
