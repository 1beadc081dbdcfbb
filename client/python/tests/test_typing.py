"""A strict user's code checks: ``@cached`` functions keep their signature
and carry typed handles (``invalidate``, ``bump``, ``options``...), sync
and async, under ``mypy --strict``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_CODE = textwrap.dedent(
    """
    from dataclasses import dataclass

    import nearcache


    @dataclass
    class Product:
        id: int
        name: str


    @nearcache.cached(ttl=300, ns="product", key="{product_id}")
    async def get_product(product_id: int) -> Product | None:
        return Product(product_id, "lamp")


    @nearcache.cached(ttl=60)
    def price(product_id: int, currency: str = "EUR") -> int:
        return 100


    async def update_product(product: Product) -> None:
        await get_product.invalidate(product.id)  # the README's own line
        version: int = await get_product.bump()
        p: Product | None = await get_product(product.id)
        again: Product | None = await get_product.options(cache_read=False)(1)
        raw: Product | None = await get_product.uncached(2)
        print(version, p, again, raw, get_product.key(3), get_product.ns)


    def reprice() -> None:
        existed: bool = price.invalidate(1, currency="USD")
        cents: int = price(1)
        fresh: int = price.options(cache_write=False)(2, "USD")
        info: dict[str, int] = price.cache_info()
        print(existed, cents, fresh, info, price.bump())
    """
)

WRONG = textwrap.dedent(
    """
    import nearcache


    @nearcache.cached(ttl=60)
    def price(product_id: int) -> int:
        return 100


    @nearcache.cached(ttl=60)
    async def name(product_id: int) -> str:
        return "lamp"


    async def misuse() -> None:
        price.invalidate("one")
        label: int = await name(1)
        await price.bump()
    """
)


def mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "user.py").write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_strict_users_cached_functions_check(tmp_path: Path) -> None:
    out = mypy(tmp_path, USER_CODE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_wrong_uses_of_a_cached_function_are_type_errors(tmp_path: Path) -> None:
    out = mypy(tmp_path, WRONG)
    assert out.returncode == 1, out.stdout + out.stderr
    assert 'Argument 1 to "invalidate"' in out.stdout  # a str for product_id
    assert 'Incompatible types in assignment (expression has type "str"' in out.stdout
    assert '(actual type "int", expected type "Awaitable[Any]")' in out.stdout
