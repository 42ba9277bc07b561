"""The guide's view test with MockAvsbServer, run by `manage.py test myapp` (no server, no SDK
key: python/tests/guide/test_management_commands.py)."""

from django.test import TestCase
from avsb.test_utils import MockAvsbServer, TestData
class CheckoutViewTests(TestCase):
 def test_the_new_checkout_is_on(self):
  mock = MockAvsbServer(flags=[TestData.flag('checkout-v2').variation_for_all(True)])
  with self.settings(AVSB_MIDDLEWARE_OPTIONS={'server': mock}):
   response = self.client.get('/checkout/')
  self.assertEqual(response.json(), {'showNewCheckout': True, 'theme': 'default'})
  self.assertEqual([e['test'] for e in mock.exposures], ['checkout-v2'])
