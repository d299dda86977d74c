"""Models on a model server (Open Inference Protocol): a real MLServer and a misbehaving one."""
