"""Code that runs inside a debugger process (lldb imports lldb_agent.py)."""
