from stratmap.models.schemas import write_all

write_all()
