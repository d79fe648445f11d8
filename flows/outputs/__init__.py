"""What a run leaves behind: objects in the bucket (clips, subtitles), artifacts in the Prefect UI, manifests."""
