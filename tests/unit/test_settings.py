"""Settings: the environment's contract, and the cost estimate manifests carry."""

from wanedit.domain.usage import Usage
from wanedit.settings import Settings

REQUIRED = {"BUCKET_NAME": "b", "JOB_TABLE_NAME": "t", "COMPLETE_QUEUE_URL": "q", "API_KEY_SECRET_ID": "s"}


def test_no_price_means_no_estimate():
    settings = Settings.model_validate(REQUIRED)
    assert settings.estimated_cost(Usage(duration=10.04, SR=720)) is None


def test_the_estimate_is_billed_seconds_times_the_tier_price():
    prices = {"PRICE_PER_SECOND_720P": "0.1", "PRICE_PER_SECOND_1080P": "0.15", "PRICE_CURRENCY": "EUR"}
    settings = Settings.model_validate({**REQUIRED, **prices})
    assert settings.estimated_cost(Usage(duration=10.04, SR=720)) == {
        "amount": 1.004,
        "currency": "EUR",
        "billed_seconds": 10.04,
        "price_per_second": 0.1,
        "tier": "720P",
    }
    assert settings.estimated_cost(Usage.model_validate({"duration": 8, "SR": "1080"}))["amount"] == 1.2  # type: ignore[index]
    assert settings.estimated_cost(None) is None
