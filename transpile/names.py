"""Fresh, collision-free names for temporaries, flags and adjoints.

Generated names start with an underscore (`_t3`, `_brk1`); adjoints are `d` + name (`dx`,
`dy`) and, in forward-mode code, tangents `t` + name (`tx`, `ty`: so the tangent code of a
gradient reads `tdx` for the tangent of the adjoint `dx`), with a suffix only when the user
already has a variable of that name.
"""
import ast

from .astutil import nodes


class Names:
    def __init__(self, node=None, prefix="d"):
        self.prefix = prefix      # "d": adjoints (reverse mode); "t": tangents (forward)
        self.used = set()
        self.counters = {}
        self.adjoints = {}
        self.flags = set()        # boolean flags made by jump lowering (always bool)
        if node is not None:
            for n in nodes(node):
                if isinstance(n, ast.Name):
                    self.used.add(n.id)
                elif isinstance(n, ast.arg):
                    self.used.add(n.arg)
                elif isinstance(n, (ast.FunctionDef, ast.Lambda)) and hasattr(n, "name"):
                    self.used.add(n.name)

    def reserve(self, name):
        self.used.add(name)

    def fresh(self, base="_t"):
        k = self.counters.get(base, 0)
        while True:
            k += 1
            name = f"{base}{k}"
            if name not in self.used:
                self.counters[base] = k
                self.used.add(name)
                return name

    def unique(self, name):
        """`name` itself if free, else name_2, name_3, ..."""
        if name not in self.used:
            self.used.add(name)
            return name
        k = 2
        while f"{name}_{k}" in self.used:
            k += 1
        self.used.add(f"{name}_{k}")
        return f"{name}_{k}"

    def adjoint(self, name):
        if name not in self.adjoints:
            self.adjoints[name] = self.unique(self.prefix + name)
        return self.adjoints[name]

    def flag(self, base):
        name = self.fresh(base)
        self.flags.add(name)
        return name
