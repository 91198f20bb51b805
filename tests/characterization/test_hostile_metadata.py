"""Image metadata written by hostile or careless software: text where numbers belong, entity bombs,
control characters. The image is refused with a clear message or stored with what can be read."""

from __future__ import annotations

import numpy as np
import pytest

from characterization import services
from characterization.models import CheckImage
from lims.errors import DomainError
from tests.characterization.factories import stored_files, tiff_bytes, upload


def ome(pixels_attrs: str = "", objective_attrs: str = "", channel_name: str = "GFP", prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Instrument ID="Instrument:0"><Objective ID="Objective:0" Manufacturer="Zeiss" {objective_attrs}/></Instrument>'
        '<Image ID="Image:0"><ObjectiveSettings ID="Objective:0"/>'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="16" SizeY="16" SizeC="1" SizeZ="1" '
        f'SizeT="1" {pixels_attrs}><Channel ID="Channel:0:0" Name="{channel_name}" SamplesPerPixel="1"/>'
        '<TiffData IFD="0" PlaneCount="1"/></Pixels></Image></OME>'
    )


def ome_tiff(description: str) -> bytes:
    data = np.arange(256, dtype=np.uint16).reshape(16, 16)
    return tiff_bytes(data, description=description, metadata=None, photometric="minisblack")


@pytest.mark.parametrize(
    ("pixels_attrs", "objective_attrs"),
    [
        ('PhysicalSizeX="about 0.3" PhysicalSizeXUnit="um"', 'NominalMagnification="twenty" LensNA="0.5"'),
        ('PhysicalSizeX="NaN"', 'NominalMagnification="inf" LensNA="high"'),
        ('PhysicalSizeX=""', 'NominalMagnification="" LensNA=""'),
        ('PhysicalSizeX="1e999"', 'NominalMagnification="20" LensNA="nan"'),
    ],
)
def test_text_where_a_metadata_number_belongs_stores_the_image_without_that_number(
    check, member, pixels_attrs, objective_attrs
):
    content = ome_tiff(ome(pixels_attrs, objective_attrs))
    image = services.check_image_upload(lm_check=check, upload=upload(content, "odd.ome.tif"), by=member)
    assert image.format == "ome-tiff"
    assert image.pixel_size_um is None
    assert "nan" not in image.objective.lower() and "inf" not in image.objective.lower()


def test_text_in_metadata_numbers_is_not_a_server_error_through_the_api(api, check):
    content = ome_tiff(ome('PhysicalSizeX="abc"', 'NominalMagnification="x"'))
    response = api.post(
        "/api/v1/check-images/", {"check": check.pk, "file": upload(content, "odd.ome.tif")}, format="multipart"
    )
    assert response.status_code == 201, response.content


def test_ome_metadata_declaring_entities_is_refused_and_nothing_is_kept(check, member):
    bomb = (
        '<!DOCTYPE OME [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    )
    content = ome_tiff(ome(channel_name="&c;", prolog=bomb))
    with pytest.raises(DomainError, match="DOCTYPE or XML entities") as error:
        services.check_image_upload(lm_check=check, upload=upload(content, "bomb.ome.tif"), by=member)
    assert error.value.field == "file"
    assert CheckImage.objects.count() == 0
    assert stored_files() == []


def test_control_characters_in_names_and_metadata_are_not_stored(check, member):
    content = ome_tiff(ome(channel_name="GFP&#10;injected", objective_attrs='Model="A&#10;B"'))
    image = services.check_image_upload(lm_check=check, upload=upload(content, "a\nb\x00c.tif"), by=member)
    assert image.original_name == "a b c.tif"
    assert "\n" not in image.objective and all("\n" not in n for n in image.channel_names)
