"""placeholder"""
def export_adapterhub(*a, **k): raise NotImplementedError
def load_adapterhub_adapter(*a, **k): raise NotImplementedError
