"""Siting's errors are geo domain errors: the API status and the CLI exit come from the one error table."""

import pytest

from geo.errors import InvalidInput, NotFound, Unavailable
from gis_api.errors import status_and_code
from siting import errors, io, models, network, service


def test_old_names_are_the_shared_classes():
    assert models.SitingError is errors.SitingError
    assert io.InputError is errors.InputError
    assert network.NetworkError is errors.NetworkError
    assert service.SitingInputError is errors.SitingInputError
    assert service.SitingNotFound is errors.SitingNotFound


@pytest.mark.parametrize("cls,base,status", [
    (errors.SitingInputError, InvalidInput, 422),
    (errors.SitingError, InvalidInput, 422),
    (errors.InputError, InvalidInput, 422),
    (errors.NetworkError, InvalidInput, 422),
    (errors.SitingNotFound, NotFound, 404),
    (errors.SitingDataMissing, Unavailable, 503),
])
def test_each_error_has_its_domain_class_and_status(cls, base, status):
    exc = cls("消息 message")
    assert isinstance(exc, base) and exc.message == "消息 message" and str(exc) == "消息 message"
    assert status_and_code(exc)[0] == status


def test_model_errors_are_input_errors_and_still_value_errors():
    # callers that caught SitingInputError (or ValueError) around a model still catch its errors
    assert issubclass(errors.SitingError, errors.SitingInputError)
    assert issubclass(errors.SitingError, ValueError)
    assert issubclass(errors.SitingNotFound, LookupError)


def test_network_error_keeps_the_point_indices():
    exc = errors.NetworkError("部分点无法匹配到道路网络", [3, 5])
    assert exc.indices == [3, 5] and exc.message == "部分点无法匹配到道路网络"
