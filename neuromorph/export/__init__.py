"""neuromorph.export"""
