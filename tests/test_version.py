"""The compatibility rule of calozdc.version: newer format or major version → clear ValueError."""

import pytest

from calozdc.version import FORMAT_VERSIONS, __version__, check_compatible, parse_version


def test_parse_version():
    assert parse_version("1.2.3") == (1, 2, 3)
    assert parse_version("0.10") == (0, 10, 0)
    assert parse_version("2.0.0rc1") == (2, 0, 0)
    assert parse_version(__version__)[:2] >= (0, 1)
    with pytest.raises(ValueError, match="calozdc_version='dev'"):
        parse_version("dev")


@pytest.mark.parametrize("kind", sorted(FORMAT_VERSIONS))
def test_older_and_equal_versions_load(kind):
    ours = FORMAT_VERSIONS[kind]
    for format_version in (None, 1, ours):
        check_compatible(kind, format_version, __version__)
    check_compatible(kind, None, "0.0.1")
    check_compatible(kind, ours, None)
    major = parse_version(__version__)[0]
    check_compatible(kind, ours, f"{major}.99.0")  # a newer minor in the same format loads


@pytest.mark.parametrize("kind", sorted(FORMAT_VERSIONS))
@pytest.mark.parametrize(
    "format_version, version, text",
    [
        ("future", None, "format_version={future}"),
        (None, "{major}.0.0", "calozdc_version='{major}.0.0'"),
        ("3.5", None, "format_version='3.5'"),
        ("x", None, "format_version='x'"),
    ],
)
def test_newer_or_unreadable_versions_are_refused(kind, format_version, version, text):
    future, major = FORMAT_VERSIONS[kind] + 1, parse_version(__version__)[0] + 1
    format_version = future if format_version == "future" else format_version
    version = None if version is None else version.format(major=major)
    with pytest.raises(ValueError) as err:
        check_compatible(kind, format_version, version, what="thing.h5")
    assert text.format(future=future, major=major) in str(err.value)
    assert "thing.h5" in str(err.value)
