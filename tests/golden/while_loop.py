"""A while loop whose trip count depends on the value (a stopping test)."""


def f(x, r):
    y = x
    n = 0
    while y < 10.0 and n < 20:
        y = y * r + 0.5
        n = n + 1
    return y * y


ARGS = (0.8, 1.7)
MORE_ARGS = [(3.0, 1.3), (20.0, 1.5)]      # fewer trips; none
WRT = ("x", "r")
