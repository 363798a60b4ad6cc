"""Stand-ins shared by tests/ and bench/: a fake GitHub server and proposals made by editing
one real value of a real system file. Not part of the installed package."""
