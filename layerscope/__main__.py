from layerscope.cli import run

run()
