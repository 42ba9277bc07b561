"""The guide's OpenFeature sample: the provider over the guide's AvsbServer (the one of the
"Outside a request" sample)."""

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from avsb.openfeature import AvsbProvider
from myapp.apps import MyAppConfig


def u_1_sees_the_new_checkout() -> bool:
    """checkout-v2 for u_1, through OpenFeature's client."""
    server = MyAppConfig.avsb_server
    api.set_provider(AvsbProvider(server))
    return api.get_client().get_boolean_value('checkout-v2', False, EvaluationContext('u_1'))
