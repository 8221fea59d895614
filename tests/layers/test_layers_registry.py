"""The layer registry is data: every entry well-formed, no private column exposed."""

import pytest

from layers import registry
from layers.registry import Layer, Prop, Style

PRIVATE = {"tags", "node_ids", "properties", "phone", "resident", "residents", "id_card", "owner_name",
           "contact", "contact_phone", "mobile", "password"}


def test_ids_unique_and_every_layer_titled():
    layers = registry.all_layers()
    assert len({layer.id for layer in layers}) == len(layers)
    for layer in layers:
        assert layer.title_zh and layer.title_en
        assert layer.read_role in registry.READ_ROLES
        assert layer.min_zoom <= layer.max_zoom


def test_no_private_property_exposed():
    for layer in registry.all_layers():
        names = {p.name for p in layer.properties} | {p.col for p in layer.properties}
        assert not (names & PRIVATE), (layer.id, names & PRIVATE)


def test_base_layers_registered_and_basemap_has_roads_buildings_water_admin():
    ids = {layer.id for layer in registry.all_layers()}
    assert {"admin_district", "road", "building", "poi", "water", "railway", "demo_address_point"} <= ids
    base = {layer.id for layer in registry.basemap_layers()}
    assert {"road", "building", "water", "admin_district"} <= base


def test_bad_identifiers_rejected():
    with pytest.raises(ValueError, match="bad identifier"):
        Layer(id="x", title_zh="x", title_en="x", table="road; drop table road", geometry_type="Point",
              properties=())
    with pytest.raises(ValueError, match="bad identifier"):
        Layer(id="x", title_zh="x", title_en="x", table="road", geometry_type="Point",
              properties=(Prop("name", column="name) --"),))
    with pytest.raises(ValueError, match="geometry type"):
        Layer(id="x", title_zh="x", title_en="x", table="road", geometry_type="Blob", properties=())


def test_register_adds_a_layer_without_new_code():
    layer = Layer(id="test_extra_layer", title_zh="测试", title_en="Test", table="poi", geometry_type="Point",
                  properties=(Prop("name"),), style=Style(color="#123456"))
    try:
        registry.register(layer)
        assert registry.get("test_extra_layer") is layer
        with pytest.raises(ValueError):
            registry.register(layer)
    finally:
        registry._BY_ID.pop("test_extra_layer", None)
        registry.LAYERS = tuple(x for x in registry.LAYERS if x.id != "test_extra_layer")


def test_public_dict_has_style_for_the_web_map():
    d = registry.get("road").public_dict()
    assert d["title"] == "道路"
    assert d["style"]["leaflet"]["color"].startswith("#")
    assert "table" not in d
