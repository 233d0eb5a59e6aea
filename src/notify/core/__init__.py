"""The core: entities, commands (all validation), cursors, errors and ports. No I/O.

Everything above (service, transports) and below (stores, bus, providers)
speaks these types; nothing here imports from the rest of the package.
"""
