from emoalign.cli.main import main

main()
