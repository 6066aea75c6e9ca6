"""Water-environment compensation between towns for cross-boundary sections (跨界断面考核补偿).

``rules`` (rule sets and GB 3838-2002 limits, from data), ``sections`` (section tables),
``samples`` (samples and monthly values), ``options`` (named ambiguities), ``calculate`` (the
month), ``allocate`` (密云's annual allocation). Independent of the zone store.
"""
