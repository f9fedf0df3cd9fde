"""Endpoint, region and anonymous-access resolution; listing through the real server."""

from __future__ import annotations

import pytest

from isc_kit.catalog import bucket_for_region
from isc_kit.config import resolve_endpoint
from isc_kit.errors import AccessDeniedError, ConfigError, ObjectNotFoundError
from isc_kit.source import Source, list_objects, resolve_source, translate_error


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    assert resolve_endpoint() == "http://generic:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-specific:2")
    assert resolve_endpoint() == "http://s3-specific:2"
    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", "http://isc:3/")
    assert resolve_endpoint() == "http://isc:3"
    assert resolve_endpoint("http://explicit:4") == "http://explicit:4"


def test_no_endpoint_means_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ISC_KIT_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_endpoint() is None
    source = resolve_source()
    assert source.describe() == "s3://drivendata-competition-fb-isc-data (us-west, AWS, anonymous)"


def test_bad_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http://"):
        resolve_endpoint("127.0.0.1:9000")


def test_regional_bucket_names_follow_the_instructions() -> None:
    assert (
        bucket_for_region("drivendata-competition-fb-isc-data", "eu")
        == "drivendata-competition-fb-isc-data-eu"
    )
    assert Source(region="asia").bucket_name == "drivendata-competition-fb-isc-data-asia"
    assert resolve_source(bucket="drivendata-competition-fb-isc-data-eu", region="us-west").bucket_name == (
        "drivendata-competition-fb-isc-data"
    )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISC_KIT_REGION", "eu")
    monkeypatch.setenv("ISC_KIT_ANON", "false")
    source = resolve_source()
    assert (source.region, source.anon) == ("eu", False)
    assert resolve_source(region="asia", anon=True).region == "asia"
    monkeypatch.setenv("ISC_KIT_ANON", "maybe")
    with pytest.raises(ConfigError, match="ISC_KIT_ANON"):
        resolve_source()


@pytest.mark.parametrize("bad", [{"region": "mars"}, {"bucket": "Bad_Bucket!"}])
def test_invalid_source_values(bad: dict) -> None:
    with pytest.raises(ConfigError):
        Source(**bad)


def test_listing_all_three_mirrors_anonymously(s3_env: str) -> None:
    for region in ("us-west", "eu", "asia"):
        keys = [o["key"] for o in list_objects(resolve_source(region=region), "all/query_images/Q0000")]
        assert keys == [f"all/query_images/Q0000{i}.jpg" for i in range(10)]


def test_missing_bucket_says_what_to_check(s3_env: str) -> None:
    with pytest.raises(ObjectNotFoundError, match="check the bucket name, the region"):
        list(list_objects(resolve_source(bucket="no-such-isc-bucket"), "all/"))


def test_access_denied_message_mentions_credentials() -> None:
    err = translate_error(PermissionError("denied"), "s3://b/k", Source(bucket="bbb"))
    assert isinstance(err, AccessDeniedError)
    assert "403" in str(err)
    assert "--no-anon" in str(err)
