"""The benchmark case: one test per catalog case (model x framework x quantization), parametrized by the plugin."""


def test_aiotbench(aiotbench):
    result = aiotbench.run()
    aiotbench.check(result)
