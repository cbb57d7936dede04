"""neuromorph.kernels"""
