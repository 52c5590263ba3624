from rest_framework import serializers

from catalog.models import Dataset, DatasetFrequency


class DatasetFrequencyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetFrequency
        fields = ["frequency", "approval_mode"]


class DatasetOutputSerializer(serializers.ModelSerializer):
    frequencies = DatasetFrequencyOutputSerializer(many=True)

    class Meta:
        model = Dataset
        fields = ["symbol", "name", "frequencies"]
