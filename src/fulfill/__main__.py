from fulfill.cli import main

main()
