"""neuromorph.energy"""
