from fieldcast.cli import main

main(prog_name="fieldcast")
