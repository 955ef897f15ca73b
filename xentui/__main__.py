"""The `xentui` command and `python -m xentui`."""

import gc


def run() -> int:
    # Start-up (Textual, our modules, a thousand simulated domains) builds a few hundred thousand
    # objects that live as long as the program: the collector would scan them over and over before
    # the first frame for no garbage. It stays off until the first frame is out (or batch mode starts);
    # then the screen collects once, freezes what start-up built and turns it back on.
    gc.disable()
    from xentui.cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
