"""neuromorph.features"""
