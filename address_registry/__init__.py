"""Standard-address registry (标准地址库): codes, records, build, lifecycle, geocoding, parsing."""

