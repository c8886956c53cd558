from causalcli.cli import main

main()
