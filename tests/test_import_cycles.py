"""No import cycle between HDH's modules, imports inside functions included.

``lint-imports`` (pyproject's contracts) checks the layers and the sandbox boundary; this
checks that no two modules reach each other, which a lazy import inside a function would
otherwise hide: grimp reads every import statement of a module, wherever it is.
"""

from __future__ import annotations

import grimp


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = grimp.build_graph("jupyterlab_hdh", "hdh")
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                back = graph.find_shortest_chain(importer=imported, imported=module) or ()
                cycles.add(f"{module} -> {' -> '.join(back)}")
    assert sorted(cycles) == []
