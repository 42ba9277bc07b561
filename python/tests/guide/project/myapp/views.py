from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt


class CheckoutView(View):
    def get(self, request):
        show_new = request.avsb.get_bool_flag('checkout-v2', False)
        theme = request.avsb.get_string_flag('ui-theme', 'default')
        return JsonResponse({'showNewCheckout': show_new, 'theme': theme})


async def checkout_async(request):
    """The same answer from an async view: request.avsb does no I/O, so nothing is awaited."""
    show_new = request.avsb.get_bool_flag('checkout-v2', False)
    theme = request.avsb.get_string_flag('ui-theme', 'default')
    group = request.avsb.get_group('checkout-v2').group
    return JsonResponse({'showNewCheckout': show_new, 'theme': theme, 'checkoutGroup': group})


@method_decorator(csrf_exempt, name='dispatch')
class PurchaseView(View):
    def post(self, request):
        request.avsb.track('purchase', value=149.99, properties={'currency': 'usd'})
        return JsonResponse({'ok': True})


def home(request):
    return render(request, 'myapp/home.html')


def flags_page(request):
    """The guide's template sample (myapp/flags.html)."""
    return render(request, 'myapp/flags.html')


def health(request):
    """A view that reads no flag."""
    return HttpResponse('ok')
