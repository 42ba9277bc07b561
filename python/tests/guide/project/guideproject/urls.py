from django.urls import path

from myapp import views

urlpatterns = [
    path("", views.home),
    path("flags/", views.flags_page),
    path("checkout/", views.CheckoutView.as_view()),
    path("checkout-async/", views.checkout_async),
    path("purchase/", views.PurchaseView.as_view()),
    path("health/", views.health),
]
