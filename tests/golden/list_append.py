"""A list built by append in a loop and read back by index."""


def f(x, c):
    xs = []
    v = x
    for i in range(3):
        v = v * c + 1.0
        xs.append(v)
    return xs[0] * xs[2] + xs[1]


ARGS = (0.6, 1.2)
WRT = ("x", "c")
