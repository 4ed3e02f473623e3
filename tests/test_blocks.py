"""stratmap's blocks pass Prefect's standard block test suite (descriptions, documentation
URL, a code example), and the credentials block is a typed credentials block."""

from __future__ import annotations

import pytest
from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from stratmap.flows.blocks import SmtpEmail, TrackerCredentials


@pytest.mark.parametrize("block_class", [TrackerCredentials, SmtpEmail])
class TestStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block_class: type[Block]) -> type[Block]:
        return block_class

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Prefect wants an http(s) logo it fetches; stratmap has no site to host one, and a
        # made-up address is worse than none (the UI shows a placeholder).
        assert block._logo_url is None


def test_the_token_is_a_secret_read_through_the_accessor() -> None:
    credentials = TrackerCredentials(token="sk-1234", email="ada@northwind.example",
                                     url="https://northwind.atlassian.net")
    assert isinstance(credentials, CredentialsBlock)
    assert "sk-1234" not in repr(credentials)
    assert credentials.get_token() == "sk-1234"
    with credentials.get_client() as client:
        assert str(client.base_url) == "https://northwind.atlassian.net"
        request = client.build_request("GET", "/rest/api/3/myself")
        assert client.auth is not None
        flow = client.auth.sync_auth_flow(request)
        assert next(flow).headers["Authorization"].startswith("Basic ")
