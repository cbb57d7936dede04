"""neuromorph.models"""
