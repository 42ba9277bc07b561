import pytest
from avsb.test_utils import MockAvsbServer, TestData
@pytest.fixture
def mock_server():
 td = (
  TestData.flag('checkout-v2')
  .boolean_flag()
  .variation_for_user('u_1', True)
  .fallthrough_variation(False)
 )
 return MockAvsbServer(flags=[td.build()])
def test_returns_true_for_u1(mock_server):
 scoped = mock_server.for_user({'kind': 'user', 'key': 'u_1'})
 assert scoped.get_bool_flag('checkout-v2', False) is True
def test_returns_default_false(mock_server):
 scoped = mock_server.for_user({'kind': 'user', 'key': 'other'})
 assert scoped.get_bool_flag('checkout-v2', False) is False
