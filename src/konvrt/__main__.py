from konvrt.cli import main

main()
