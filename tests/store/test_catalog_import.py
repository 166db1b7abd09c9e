"""Catalogue CSV import: good rows kept, bad rows reported by line, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from shouyin.domain.money import Money
from shouyin.domain.product import Unit
from shouyin.store.catalog_import import CatalogueFileError, import_catalogue
from shouyin.store.catalogue_repo import SqlCatalogue

HEADER = "sku,name,price,barcodes,unit,category,tax_rate,member_price,plu,mnemonic\n"


def write_csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "catalogue.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_valid_rows_are_imported_with_exact_prices(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "A1,可口可乐 330ml,3.50,6901234567892,each,饮料,13,3.20,,kkkl\n"
        "A2,西红柿,6.8,,kg,生鲜蔬果,9,,10001,xhs\n",
    )
    report = import_catalogue(engine, path)
    assert (report.imported, report.errors) == (2, [])
    catalogue = SqlCatalogue(engine)
    cola = catalogue.by_barcode("6901234567892")
    assert cola is not None
    assert (cola.sku, cola.price, cola.member_price) == ("A1", Money(350), Money(320))
    tomato = catalogue.by_plu("10001")
    assert tomato is not None
    assert (tomato.unit, tomato.price, tomato.tax_rate_bp) == (Unit.KG, Money(680), 900)


def test_bad_rows_are_reported_by_line_and_good_rows_kept(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "A1,好丽友 派,12.90,6901234567892,,,,,,\n"  # line 2: fine
        "A2,坏条码,1.00,6901234567891,,,,,,\n"  # line 3: bad check digit
        "A3,,1.00,,,,,,,\n"  # line 4: no name
        "A4,价格错,1.234,,,,,,,\n"  # line 5: three decimals
        "A5,重复条码,2.00,6901234567892,,,,,,\n"  # line 6: barcode taken by A1
        "A6,单位错,2.00,,box,,,,,\n",  # line 7: unknown unit
    )
    report = import_catalogue(engine, path)
    assert report.imported == 1
    assert [e.line for e in report.errors] == [3, 4, 5, 7, 6]
    assert "check digit" in report.errors[0].message
    assert "barcode" in report.errors[4].message
    assert SqlCatalogue(engine).count() == 1


def test_reimport_updates_products_by_sku(engine: Engine, tmp_path: Path) -> None:
    import_catalogue(engine, write_csv(tmp_path, "A1,旧名,1.00,6901234567892,,,,,,\n"))
    import_catalogue(engine, write_csv(tmp_path, "A1,新名,2.00,96385074,,,,,,\n"))
    catalogue = SqlCatalogue(engine)
    product = catalogue.by_sku("A1")
    assert product is not None
    assert (product.name, product.price, product.barcodes) == ("新名", Money(200), ("96385074",))
    assert catalogue.by_barcode("6901234567892") is None


def test_missing_required_column_rejects_the_file_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, "A1,1.00\n", header="sku,price\n")
    with pytest.raises(CatalogueFileError, match="name"):
        import_catalogue(engine, path)
    assert SqlCatalogue(engine).count() == 0


def test_non_utf8_file_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(HEADER.encode() + "A1,可乐,3.00,,,,,,,\n".encode("gbk"))
    with pytest.raises(CatalogueFileError, match="UTF-8"):
        import_catalogue(engine, path)
    assert SqlCatalogue(engine).count() == 0


def test_upc_a_barcode_is_found_by_its_ean13_form(engine: Engine, tmp_path: Path) -> None:
    import_catalogue(engine, write_csv(tmp_path, "U1,进口薯片,9.90,036000291452,,,,,,\n"))
    product = SqlCatalogue(engine).by_barcode("0036000291452")
    assert product is not None
    assert product.sku == "U1"


def test_search_finds_by_name_prefix_and_mnemonic(engine: Engine, tmp_path: Path) -> None:
    import_catalogue(
        engine,
        write_csv(
            tmp_path,
            "A1,可口可乐 330ml,3.50,,,,,,,kkkl\n"
            "A2,可比克 薯片,5.00,,,,,,,kbk\n"
            "A3,雪碧,3.00,,,,,,,xb\n",
        ),
    )
    catalogue = SqlCatalogue(engine)
    assert {p.sku for p in catalogue.search("可")} == {"A1", "A2"}
    assert [p.sku for p in catalogue.search("KKK")] == ["A1"]
    assert catalogue.search("50%") == []


def test_a_sku_repeated_in_a_later_batch_keeps_only_its_last_barcodes(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "A1,可乐,3.00,6901234567892,,,,,,\nB1,雪碧,3.00,,,,,,,\nA1,可乐,3.20,96385074,,,,,,\n",
    )
    report = import_catalogue(engine, path, batch_size=1)
    assert (report.imported, report.errors) == (3, [])
    catalogue = SqlCatalogue(engine)
    product = catalogue.by_sku("A1")
    assert product is not None
    assert (product.price, product.barcodes) == (Money(320), ("96385074",))
    assert catalogue.by_barcode("6901234567892") is None


def test_a_fresh_import_leaves_every_lookup_index_in_place(engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy import inspect

    before = {t: {i["name"] for i in inspect(engine).get_indexes(t)} for t in TABLES}
    import_catalogue(engine, write_csv(tmp_path, "A1,可乐,3.00,6901234567892,,,,,,kl\n"))
    after = {t: {i["name"] for i in inspect(engine).get_indexes(t)} for t in TABLES}
    assert after == before
    assert "ix_products_name" in after["products"]


TABLES = ("products", "product_barcodes")
