"""Static reference lists behind the demo seed: real large caps, name parts, pattern definitions.

The tables are kept as text (one row a line, ``|``-separated) so they read like the data they are.
Market caps (billions of USD) and prices are round, recent-looking figures for a believable demo,
not quotes.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "COMPANY_SUFFIXES",
    "KNOWN_SYMBOLS",
    "NAME_ROOTS",
    "PATTERN_DEFINITIONS",
    "SECTORS",
    "SECTOR_OF_INDUSTRY",
    "KnownSymbol",
    "PatternDefinition",
    "SectorProfile",
]


class KnownSymbol(NamedTuple):
    symbol: str
    name: str
    exchange: str
    type: str
    sector: str | None
    industry: str | None
    market_cap: int | None
    price: float


class SectorProfile(NamedTuple):
    """How generated companies of a sector are named: (name noun, industry) pairs."""

    sector: str
    weight: int
    nouns: tuple[tuple[str, str], ...]


class PatternDefinition(NamedTuple):
    name: str
    short_description: str
    category: str
    confidence_threshold: float
    risk_level: str
    applicable_timeframes: tuple[str, ...]
    direction: str
    enabled: bool


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in table.strip().splitlines()]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# industry | GICS sector
_INDUSTRIES = """
Diversified Telecommunication Services | Communication Services
Entertainment | Communication Services
Interactive Media & Services | Communication Services
Media | Communication Services
Wireless Telecommunication Services | Communication Services
Automobile Components | Consumer Discretionary
Automobiles | Consumer Discretionary
Broadline Retail | Consumer Discretionary
Hotels, Restaurants & Leisure | Consumer Discretionary
Household Durables | Consumer Discretionary
Leisure Products | Consumer Discretionary
Specialty Retail | Consumer Discretionary
Textiles, Apparel & Luxury Goods | Consumer Discretionary
Beverages | Consumer Staples
Consumer Staples Distribution & Retail | Consumer Staples
Food Products | Consumer Staples
Household Products | Consumer Staples
Energy Equipment & Services | Energy
Oil, Gas & Consumable Fuels | Energy
Banks | Financials
Capital Markets | Financials
Financial Services | Financials
Insurance | Financials
Biotechnology | Health Care
Health Care Equipment & Supplies | Health Care
Health Care Providers & Services | Health Care
Life Sciences Tools & Services | Health Care
Pharmaceuticals | Health Care
Aerospace & Defense | Industrials
Air Freight & Logistics | Industrials
Building Products | Industrials
Construction & Engineering | Industrials
Electrical Equipment | Industrials
Ground Transportation | Industrials
Industrial Conglomerates | Industrials
Machinery | Industrials
Communications Equipment | Information Technology
Electronic Equipment, Instruments & Components | Information Technology
IT Services | Information Technology
Semiconductors & Semiconductor Equipment | Information Technology
Software | Information Technology
Technology Hardware, Storage & Peripherals | Information Technology
Chemicals | Materials
Construction Materials | Materials
Containers & Packaging | Materials
Metals & Mining | Materials
Health Care REITs | Real Estate
Industrial REITs | Real Estate
Office REITs | Real Estate
Residential REITs | Real Estate
Retail REITs | Real Estate
Specialized REITs | Real Estate
Electric Utilities | Utilities
Gas Utilities | Utilities
Independent Power and Renewable Electricity Producers | Utilities
Multi-Utilities | Utilities
Water Utilities | Utilities
"""

SECTOR_OF_INDUSTRY: dict[str, str] = {industry: sector for industry, sector in _rows(_INDUSTRIES)}

# symbol | name | exchange | type | industry | market cap ($bn) | price. ETFs have no industry.
# The first rows get the most pattern activity in the demo; AAPL, MSFT and NVDA come first.
_KNOWN = """
AAPL | Apple Inc. | NASDAQ | CS | Technology Hardware, Storage & Peripherals | 3400 | 228
MSFT | Microsoft Corporation | NASDAQ | CS | Software | 3100 | 415
NVDA | NVIDIA Corporation | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 3300 | 135
AMZN | Amazon.com, Inc. | NASDAQ | CS | Broadline Retail | 2000 | 190
GOOGL | Alphabet Inc. Class A | NASDAQ | CS | Interactive Media & Services | 2100 | 170
GOOG | Alphabet Inc. Class C | NASDAQ | CS | Interactive Media & Services | 2100 | 172
META | Meta Platforms, Inc. | NASDAQ | CS | Interactive Media & Services | 1400 | 560
BRK.B | Berkshire Hathaway Inc. Class B | NYSE | CS | Financial Services | 1000 | 460
TSLA | Tesla, Inc. | NASDAQ | CS | Automobiles | 800 | 250
AVGO | Broadcom Inc. | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 800 | 170
JPM | JPMorgan Chase & Co. | NYSE | CS | Banks | 650 | 225
V | Visa Inc. Class A | NYSE | CS | Financial Services | 560 | 285
UNH | UnitedHealth Group Incorporated | NYSE | CS | Health Care Providers & Services | 520 | 560
XOM | Exxon Mobil Corporation | NYSE | CS | Oil, Gas & Consumable Fuels | 480 | 115
JNJ | Johnson & Johnson | NYSE | CS | Pharmaceuticals | 380 | 158
WMT | Walmart Inc. | NYSE | CS | Consumer Staples Distribution & Retail | 650 | 80
MA | Mastercard Incorporated Class A | NYSE | CS | Financial Services | 460 | 500
PG | The Procter & Gamble Company | NYSE | CS | Household Products | 400 | 168
HD | The Home Depot, Inc. | NYSE | CS | Specialty Retail | 390 | 395
BF-B | Brown-Forman Corporation Class B | NYSE | CS | Beverages | 20 | 43
LLY | Eli Lilly and Company | NYSE | CS | Pharmaceuticals | 800 | 880
COST | Costco Wholesale Corporation | NASDAQ | CS | Consumer Staples Distribution & Retail | 390 | 880
ORCL | Oracle Corporation | NYSE | CS | Software | 470 | 170
ABBV | AbbVie Inc. | NYSE | CS | Biotechnology | 340 | 195
MRK | Merck & Co., Inc. | NYSE | CS | Pharmaceuticals | 290 | 112
CVX | Chevron Corporation | NYSE | CS | Oil, Gas & Consumable Fuels | 270 | 148
KO | The Coca-Cola Company | NYSE | CS | Beverages | 300 | 70
PEP | PepsiCo, Inc. | NASDAQ | CS | Beverages | 230 | 170
BAC | Bank of America Corporation | NYSE | CS | Banks | 310 | 40
ADBE | Adobe Inc. | NASDAQ | CS | Software | 230 | 520
CRM | Salesforce, Inc. | NYSE | CS | Software | 260 | 270
NFLX | Netflix, Inc. | NASDAQ | CS | Entertainment | 300 | 700
AMD | Advanced Micro Devices, Inc. | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 250 | 155
INTC | Intel Corporation | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 90 | 22
CSCO | Cisco Systems, Inc. | NASDAQ | CS | Communications Equipment | 210 | 52
DIS | The Walt Disney Company | NYSE | CS | Entertainment | 170 | 95
MCD | McDonald's Corporation | NYSE | CS | Hotels, Restaurants & Leisure | 210 | 290
NKE | NIKE, Inc. Class B | NYSE | CS | Textiles, Apparel & Luxury Goods | 120 | 80
TMO | Thermo Fisher Scientific Inc. | NYSE | CS | Life Sciences Tools & Services | 230 | 600
ABT | Abbott Laboratories | NYSE | CS | Health Care Equipment & Supplies | 200 | 115
PFE | Pfizer Inc. | NYSE | CS | Pharmaceuticals | 160 | 29
WFC | Wells Fargo & Company | NYSE | CS | Banks | 200 | 58
GS | The Goldman Sachs Group, Inc. | NYSE | CS | Capital Markets | 160 | 500
MS | Morgan Stanley | NYSE | CS | Capital Markets | 160 | 100
C | Citigroup Inc. | NYSE | CS | Banks | 120 | 62
T | AT&T Inc. | NYSE | CS | Diversified Telecommunication Services | 150 | 21
VZ | Verizon Communications Inc. | NYSE | CS | Diversified Telecommunication Services | 180 | 42
BA | The Boeing Company | NYSE | CS | Aerospace & Defense | 110 | 160
CAT | Caterpillar Inc. | NYSE | CS | Machinery | 180 | 360
GE | GE Aerospace | NYSE | CS | Aerospace & Defense | 190 | 175
HON | Honeywell International Inc. | NASDAQ | CS | Industrial Conglomerates | 130 | 205
UPS | United Parcel Service, Inc. Class B | NYSE | CS | Air Freight & Logistics | 110 | 130
UBER | Uber Technologies, Inc. | NYSE | CS | Ground Transportation | 150 | 72
LIN | Linde plc | NASDAQ | CS | Chemicals | 220 | 460
SHW | The Sherwin-Williams Company | NYSE | CS | Chemicals | 90 | 360
NEE | NextEra Energy, Inc. | NYSE | CS | Electric Utilities | 160 | 78
DUK | Duke Energy Corporation | NYSE | CS | Electric Utilities | 85 | 110
PLD | Prologis, Inc. | NYSE | CS | Industrial REITs | 110 | 120
AMT | American Tower Corporation | NYSE | CS | Specialized REITs | 100 | 215
QCOM | QUALCOMM Incorporated | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 190 | 165
TXN | Texas Instruments Incorporated | NASDAQ | CS | Semiconductors & Semiconductor Equipment | 180 | 200
IBM | International Business Machines Corporation | NYSE | CS | IT Services | 190 | 210
SBUX | Starbucks Corporation | NASDAQ | CS | Hotels, Restaurants & Leisure | 110 | 95
PYPL | PayPal Holdings, Inc. | NASDAQ | CS | Financial Services | 75 | 72
COP | ConocoPhillips | NYSE | CS | Oil, Gas & Consumable Fuels | 130 | 108
SPY | SPDR S&P 500 ETF Trust | NYSE Arca | ETF | |  | 570
QQQ | Invesco QQQ Trust, Series 1 | NASDAQ | ETF | |  | 490
IWM | iShares Russell 2000 ETF | NYSE Arca | ETF | |  | 220
DIA | SPDR Dow Jones Industrial Average ETF Trust | NYSE Arca | ETF | |  | 420
"""

KNOWN_SYMBOLS: tuple[KnownSymbol, ...] = tuple(
    KnownSymbol(
        symbol,
        name,
        exchange,
        kind,
        SECTOR_OF_INDUSTRY[industry] if industry else None,
        industry or None,
        int(cap) * 1_000_000_000 if cap else None,
        float(price),
    )
    for symbol, name, exchange, kind, industry, cap, price in _rows(_KNOWN)
)

# sector | weight among generated companies
_SECTOR_WEIGHTS = """
Information Technology | 15
Health Care | 14
Financials | 14
Consumer Discretionary | 11
Industrials | 13
Consumer Staples | 6
Energy | 5
Utilities | 4
Real Estate | 6
Materials | 5
Communication Services | 7
"""

# Generated companies are called "<root> <noun> <suffix>": noun | industry (the sector follows).
_NAME_NOUNS = """
Systems | Software
Software | Software
Networks | Communications Equipment
Semiconductor | Semiconductors & Semiconductor Equipment
Micro Devices | Semiconductors & Semiconductor Equipment
Data | IT Services
Cloud | Software
Analytics | Software
Technologies | IT Services
Photonics | Electronic Equipment, Instruments & Components
Therapeutics | Biotechnology
Biosciences | Biotechnology
Pharmaceuticals | Pharmaceuticals
Medical | Health Care Equipment & Supplies
Health | Health Care Providers & Services
Diagnostics | Life Sciences Tools & Services
Surgical | Health Care Equipment & Supplies
Genomics | Biotechnology
Bancorp | Banks
Financial | Financial Services
Capital | Capital Markets
Bancshares | Banks
Insurance Group | Insurance
Asset Management | Capital Markets
Trust | Banks
Payments | Financial Services
Brands | Textiles, Apparel & Luxury Goods
Retail | Specialty Retail
Motors | Automobiles
Restaurants | Hotels, Restaurants & Leisure
Resorts | Hotels, Restaurants & Leisure
Home | Household Durables
Auto Parts | Automobile Components
Outdoor | Leisure Products
Industries | Machinery
Aerospace | Aerospace & Defense
Logistics | Air Freight & Logistics
Manufacturing | Machinery
Rail | Ground Transportation
Engineering | Construction & Engineering
Electric | Electrical Equipment
Building Products | Building Products
Foods | Food Products
Beverage | Beverages
Consumer Products | Household Products
Markets | Consumer Staples Distribution & Retail
Farms | Food Products
Energy | Oil, Gas & Consumable Fuels
Petroleum | Oil, Gas & Consumable Fuels
Resources | Oil, Gas & Consumable Fuels
Midstream | Oil, Gas & Consumable Fuels
Oilfield Services | Energy Equipment & Services
Power | Electric Utilities
Utilities | Multi-Utilities
Water | Water Utilities
Gas | Gas Utilities
Renewables | Independent Power and Renewable Electricity Producers
Realty | Retail REITs
Properties | Office REITs
Residential | Residential REITs
Storage | Specialized REITs
Healthcare Properties | Health Care REITs
Materials | Construction Materials
Chemicals | Chemicals
Mining | Metals & Mining
Steel | Metals & Mining
Packaging | Containers & Packaging
Media | Media
Communications | Diversified Telecommunication Services
Entertainment | Entertainment
Wireless | Wireless Telecommunication Services
Interactive | Interactive Media & Services
Broadcasting | Media
"""

SECTORS: tuple[SectorProfile, ...] = tuple(
    SectorProfile(
        sector,
        int(weight),
        tuple(
            (noun, industry)
            for noun, industry in _rows(_NAME_NOUNS)
            if SECTOR_OF_INDUSTRY[industry] == sector
        ),
    )
    for sector, weight in _rows(_SECTOR_WEIGHTS)
)

NAME_ROOTS: tuple[str, ...] = _words(
    """
    Apex Summit Harbor Pinnacle Cedar Granite Northwind Silverline Evergreen Crescent Meridian
    Ironwood Lakeshore Redwood Atlas Beacon Horizon Keystone Liberty Orion Pioneer Quantum Sterling
    Trident Vertex Westbrook Zenith Aurora Bayview Cobalt Eastgate Falcon Frontier Glacier Highland
    Juniper Kestrel Landmark Magnolia Nautilus Oakmont Paragon Prairie Radiant Riverbend Sequoia
    Solstice Tidewater Brightwater Canyon Copperline Driftwood Emerald Fairview Greystone Hawthorne
    Jetstream Lighthouse Mariner Northstar Overland Pacifica Ridgeway Seaboard Stonebridge Titan
    Upland Veritas Wavecrest Yellowstone Alder Bristol Cascade Dominion Everest Foxhall Gateway
    Heritage Insignia Lumen Monarch Nova Olympus Polaris Regent Sentinel Tribeca Vista Wexford Axiom
    Bellwether Clearwater Dunmore Elmwood Harborview Silvergate Bluestem Redstone Whitfield Ashford
    """
)

# (suffix, relative weight)
COMPANY_SUFFIXES: tuple[tuple[str, int], ...] = (
    ("Inc.", 10),
    ("Corp.", 4),
    ("Corporation", 3),
    ("Holdings, Inc.", 3),
    ("Group, Inc.", 2),
    ("Co.", 1),
    ("plc", 1),
    ("Ltd.", 1),
)

# name | description | category | threshold | risk | timeframes | direction | enabled
_DEFINITIONS = """
Breakout | Close above recent resistance on rising volume | breakout | 0.70 | medium | daily intraday hourly weekly | bullish | yes
Breakdown | Close below recent support on rising volume | breakout | 0.70 | medium | daily intraday hourly weekly | bearish | yes
BullishEngulfing | A bullish candle whose body engulfs the prior bearish one | candlestick | 0.65 | low | daily intraday hourly weekly | bullish | yes
BearishEngulfing | A bearish candle whose body engulfs the prior bullish one | candlestick | 0.65 | low | daily intraday hourly weekly | bearish | yes
Doji | Open and close nearly equal: indecision | candlestick | 0.60 | low | daily intraday hourly | neutral | yes
Hammer | Long lower shadow after a decline | candlestick | 0.65 | low | daily intraday hourly | bullish | yes
ShootingStar | Long upper shadow after an advance | candlestick | 0.65 | medium | daily intraday hourly | bearish | yes
MorningStar | Three-candle bottom reversal | candlestick | 0.70 | medium | daily weekly | bullish | yes
RSIOversold | RSI(14) crossed below 30 | momentum | 0.60 | medium | daily intraday hourly | bullish | yes
RSIOverbought | RSI(14) crossed above 70 | momentum | 0.60 | medium | daily intraday hourly | bearish | yes
MACDCross | MACD line crossed its signal line | momentum | 0.65 | medium | daily hourly weekly | neutral | yes
GoldenCross | 50-day average crossed above the 200-day | trend | 0.75 | low | daily weekly | bullish | yes
DeathCross | 50-day average crossed below the 200-day | trend | 0.75 | high | daily weekly | bearish | yes
HeadAndShoulders | Three peaks, the middle highest: a top reversal | reversal | 0.80 | high | daily weekly monthly | bearish | yes
InverseHeadAndShoulders | Three troughs, the middle lowest: a bottom reversal | reversal | 0.80 | medium | daily weekly monthly | bullish | yes
DoubleBottom | Two equal lows with a peak between | reversal | 0.75 | medium | daily weekly monthly | bullish | yes
DoubleTop | Two equal highs with a trough between | reversal | 0.75 | high | daily weekly monthly | bearish | yes
AscendingTriangle | Flat resistance over rising lows | continuation | 0.75 | medium | daily weekly monthly | bullish | yes
VolumeSpike | Volume above three times its 20-day average | volume | 0.60 | medium | daily intraday hourly | neutral | yes
GapUp | Open above the prior high | gap | 0.60 | medium | daily intraday | bullish | yes
BollingerSqueeze | Bollinger bandwidth at a six-month low | volatility | 0.65 | medium | daily hourly | neutral | yes
ThreeWhiteSoldiers | Three rising candles closing near their highs | candlestick | 0.75 | low | daily | bullish | no
CupAndHandle | Rounded base followed by a shallow pullback | continuation | 0.80 | medium | weekly monthly | bullish | no
"""

PATTERN_DEFINITIONS: tuple[PatternDefinition, ...] = tuple(
    PatternDefinition(
        name,
        description,
        category,
        float(threshold),
        risk,
        tuple(timeframes.split()),
        direction,
        enabled == "yes",
    )
    for name, description, category, threshold, risk, timeframes, direction, enabled in _rows(
        _DEFINITIONS
    )
)
