"""Money: the price table, estimates before paying, the cap, and spend computed from the journal.

- ``table``: ``PriceTable`` and what each paid action bills (free of Prefect: the emulator bills with it too);
- ``example_prices``: the emulator's illustrative table, saved by the local stack's setup (not vendor prices);
- ``model``: the estimate's lines and the ``cost`` a result carries; ``MaxCost``, the flows' parameter;
- ``trace``: what each submit bills, written into its journal record and noted for the run that bought it;
- ``estimate`` and ``memo``: estimates from a request, work already bought (in the journal) at 0;
- ``guard`` and ``run``: the cap, the estimate artifact, the spend of a run; ``batch``: the money budget;
- ``translation``: translate-video's estimate, cap and spend; ``spend``: the journal priced (``clipflow cost``).

``blocks.prices.ClipflowPrices`` (``clipflow-prices``) is the block a person edits.
"""
