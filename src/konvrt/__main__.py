from konvrt.cli import app

app()
