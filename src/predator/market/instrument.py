"""Instruments: what is traded, where, and at which precision.

Precisions fix the integer scales used everywhere else: a price is an int of
``10**-price_precision`` quote units, a quantity an int of ``10**-size_precision``
units, and money an int of ``10**-money_precision`` quote units.
"""

from __future__ import annotations

import msgspec

__all__ = ["Instrument"]

FEE_DECIMALS = 6
"""Decimals a fee rate may carry and still be applied exactly (0.000001 = 0.01 bps)."""


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable instrument.

    ``price_increment`` and ``size_increment`` are in units of the respective scale
    (a tick of 0.05 at price precision 2 is ``price_increment=5``).
    """

    symbol: str
    venue: str = "PAPER"
    quote_currency: str = "USD"
    price_precision: int = 2
    size_precision: int = 0
    price_increment: int = 1
    size_increment: int = 1

    @property
    def money_precision(self) -> int:
        """Decimals of the ledger's money unit for this instrument's quote currency.

        Notional (price x quantity) and fee rates with up to ``FEE_DECIMALS`` decimals
        are exact at this scale.
        """
        return self.price_precision + self.size_precision + FEE_DECIMALS

    @property
    def notional_factor(self) -> int:
        """Multiplier taking ``price * quantity`` (scale p+q) to the money scale."""
        return int(10**FEE_DECIMALS)
