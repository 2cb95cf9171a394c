import IoTSQL
print("iotrules")
